"""The PostgreSQL adapter of the history port: the team store shared by many desks."""

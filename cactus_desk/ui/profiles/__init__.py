"""Managing merchant profiles and their salts."""

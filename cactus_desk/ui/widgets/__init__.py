"""Small widgets shared by the window's parts."""

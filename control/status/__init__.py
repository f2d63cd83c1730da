"""What a running pipeline says of itself: heartbeats read, the live table, ``fakeblock status``."""

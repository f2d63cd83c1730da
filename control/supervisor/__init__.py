"""``fakeblock up``'s supervisor: starting, watching, restarting and stopping the stage processes."""

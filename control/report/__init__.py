"""``fakeblock report``: a results file as a timeline plot and a CSV."""

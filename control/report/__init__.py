"""``fakeblock report``: a results file as a timeline plot and a CSV."""

# A track seen in fewer frames is left out of the plot's band and the summary by default:
# the tracker starts a track on every detection, so a false one (a patch of wallpaper,
# a face's reflection) lives a frame or two, while a real face in view stays for many.
MIN_TRACK_FRAMES = 3

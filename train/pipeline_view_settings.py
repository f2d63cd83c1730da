"""The settings of the pipeline view (``pipeline_view``): one place, read by training, the card and the help.

No imports: the command line reads the default share without loading OpenCV.
"""

# Half the training faces are shown as the pipeline sees them in video, half as the dataset
# cuts them: the model learns both views and stays as good on dataset crops.
PIPELINE_VIEW_SHARE = 0.5
# Face sides in video pixels: from a little above the default smallest face (48 px) to a
# face filling a third of a 640x480 frame. The Haar box table is measured over the same.
FACE_SIDE_RANGE_PX = (60, 200)
# Room around the tile, in tile sides: the widest measured boxes (1.1 sides, offset 0.1)
# reach 0.15 beyond it; more leaves the re-framing free of the canvas edge.
CONTEXT_SHARE = 0.3
# The codec's 8x8 blocks fall anywhere on the face: the tile's offset from the block grid.
BLOCK_PX = 8
JPEG_QUALITY_RANGE = (20, 95)
# Shares of faces compressed as a still (JPEG), as a video frame (MPEG-4, as OpenCV's
# mp4v writes it), or not at all (an uncompressed camera or a lossless file).
CODEC_SHARES = {"jpeg": 0.5, "mp4v": 0.3, "none": 0.2}
VIDEO_FRAME_PX = 384  # a frame of the mp4v pass: holds the largest canvas (200 px * 1.6 + 8)
GAMMA_RANGE = (0.7, 1.4)
EXPOSURE_RANGE = (0.75, 1.25)
BLUR_SIGMA_RANGE_PX = (0.0, 1.5)  # optical blur, in video pixels
NOISE_SIGMA_RANGE = (0.0, 5.0)  # sensor noise, in grey levels

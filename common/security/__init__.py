"""Who may reach a stage: CurveZMQ keys and their files (keys), and the checks that keep every
socket loopback, private or authenticated (access)."""

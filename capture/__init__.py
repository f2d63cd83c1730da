"""fakeblock.capture"""

"""fakeblock.classify"""

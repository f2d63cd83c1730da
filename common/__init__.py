"""fakeblock.common"""

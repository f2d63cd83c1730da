"""fakeblock.display"""

"""fakeblock.train"""

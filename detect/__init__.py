"""fakeblock.detect"""

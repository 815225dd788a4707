"""tabs"""

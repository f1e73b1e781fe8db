"""Drafts: turning a task's downloaded files into a JianYing draft."""

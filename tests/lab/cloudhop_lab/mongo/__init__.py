"""The lab's MongoDB: a replica-set double speaking the wire protocol (member.py)."""

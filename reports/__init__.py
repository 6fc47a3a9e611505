"""The managers' room: reports, CSAT and quality review. Nothing outside imports it but server/app.py."""

"""Real peer processes (OpenSearch, rsyslog, an S3 server, a Splunk HEC receiver) for tests and benchmarks.

Each peer is a context manager that starts the real program on loopback ports and stops it by PID.
"""

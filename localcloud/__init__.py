"""Local stand-ins for the cloud services of the pattern, on loopback ports.

``fnf_api`` imitates the Serverless Workflow (FnF) RPC endpoint, ``mns_push``
signs and delivers pushes as an MNS topic does, ``fc_runtime`` serves the
callback handler as a Function Compute HTTP trigger. ``python -m localcloud run``
wires them into one end-to-end run of the pattern.
"""

"""Local stand-ins for the cloud services of the pattern, on loopback ports.

``fnf_api`` imitates the Serverless Workflow (FnF) RPC endpoint, ``mns_push``
signs and delivers pushes as an MNS topic does, ``fc_runtime`` serves the
callback handler as a Function Compute HTTP trigger. ``deployment`` reads what
the offline render deploys, and ``run.LocalStack.from_render`` deploys it on
them; ``python -m localcloud run`` renders the stack and runs the pattern end to end.
"""

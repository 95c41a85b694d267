"""Entry point of the mns-callback-flow plugin: serves the package's components to the engine."""

from mns_callback_flow.provider import serve

if __name__ == "__main__":
    serve()

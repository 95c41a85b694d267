"""The Pulumi side of mns-callback-flow: typed settings, pure documents, components."""

"""The training flow's steps, shared by the Lambda handlers and the local worker."""

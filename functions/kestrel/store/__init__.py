"""Records: how entities are laid out in the item store and the operations that change them.

This layer talks only to ports (never to boto3 or sqlite), so the same code runs on DynamoDB
and on SQLite. Every change that touches more than one item is one transaction."""

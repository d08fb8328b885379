"""SageMaker runs this as the training container's program (see Dockerfile).

The job itself is ``kestrel.handlers.training_job``, shared with the local worker, so the code that
trains on AWS is the code the tests train with."""

import sys

from kestrel.handlers.training_job import main

if __name__ == "__main__":
    sys.exit(main())

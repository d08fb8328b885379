"""The training job: manifest in, one ONNX model (backbone + head) and its card out.

It runs in a SageMaker training container on AWS and as a subprocess of the local worker,
with the same SageMaker directory conventions (see ``entry``)."""

"""Decoding of input messages into records, or a ``Rejected`` with a reason code.

Inference topic: native JSON events (``native``) and KServe payload-logger
CloudEvents with Open Inference Protocol v2 bodies (``cloudevents``, ``oip``,
``kserve``).  GPU topic: native JSON samples and Telegraf ``nvidia_smi`` JSON
(``telegraf``).  ``dispatch`` picks the path per message; ``reasons`` lists
every reason code.
"""

from streams.decoding.dispatch import GpuDecoder, InferenceDecoder
from streams.decoding.native import encode_gpu_sample, encode_inference_event
from streams.decoding.reasons import REASONS

__all__ = ["REASONS", "GpuDecoder", "InferenceDecoder", "encode_gpu_sample", "encode_inference_event"]

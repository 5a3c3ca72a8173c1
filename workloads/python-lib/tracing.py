"""vSwarm's Python tracing module (utils/tracing/python/tracing.py at the functions' commit),
reproduced for simctl's Python functions, which import it as vSwarm's do.

vSwarm's functions import it unconditionally and wrap their work in `with tracing.Span(...)`.
With tracing off (ENABLE_TRACING unset, as vSwarm-u measures them) no tracer provider is set,
so every Span still asks OpenTelemetry's API (1.3.0, vSwarm's pin) for a tracer (a proxy to the
default no-op provider), starts a non-recording span and attaches and detaches it in the
runtime context: that per-call cost is what this module keeps. Importing it loads the SDK, the
Zipkin JSON exporter and the gRPC instrumentation as vSwarm's does.

OpenTelemetry 1.3.0 finds its runtime context and default tracer provider through
pkg_resources entry points, and pkg_resources loads an entry point only when the distribution's
requirements are installed: Deprecated and wrapt, wheels in site-packages/ (found through
PYTHONPATH) like OpenTelemetry and setuptools (pkg_resources). Without them every Span failed
with "Failed to load context: contextvars_context".
"""

import contextlib
import os

LAMBDA = os.environ.get("IS_LAMBDA", "no").lower() in ["true", "yes", "1"]
TRACE = os.environ.get("ENABLE_TRACING", "no").lower() in ["true", "yes", "1", "on"]

from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.zipkin.json import ZipkinExporter  # noqa: E402
from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

if not LAMBDA:
    from opentelemetry.instrumentation.grpc import (  # noqa: E402
        GrpcInstrumentorClient,
        GrpcInstrumentorServer,
    )


def IsTracingEnabled():
    print("ISTRACINGENABLED: %s" % TRACE)
    return TRACE


def initTracer(name, debug=False, url="http://localhost:9411/api/v2/spans"):
    trace.set_tracer_provider(TracerProvider(resource=Resource.create({SERVICE_NAME: name})))
    provider = trace.get_tracer_provider()
    provider.add_span_processor(BatchSpanProcessor(ZipkinExporter(endpoint=url)))
    if debug:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))


def grpcInstrumentClient():
    GrpcInstrumentorClient().instrument()


def grpcInstrumentServer():
    GrpcInstrumentorServer().instrument()


class Span:
    """A span around the function's work; with tracing off a non-recording one."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        span = trace.get_tracer(__name__).start_span(self.name)
        self._otelSpan = trace.use_span(span, end_on_exit=True)
        # Entered through an ExitStack, as vSwarm does, so that leaving costs the same.
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._otelSpan)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        return self._stack.__exit__(exc_type, exc_value, traceback)

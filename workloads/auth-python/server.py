"""auth-python: vSwarm's auth-python (benchmarks/auth/python/server.py): a fake AWS API Gateway
authorizer that builds a policy document for the token.

Behaviour kept exactly as vSwarm's, quirks included: the token is matched by substring ('allow'
before 'deny'); any other token answers "Unauthorized" (vSwarm's `elif 'unauthorized':` is always
true, so its "Error: Invalid token" branch is never reached); the policy is printed as the
repr of the object's __dict__, so the reply contains the policy object's memory address
(`<__main__.Empty object at 0x...>`) and its bytes differ from run to run in that address only.
vSwarm's tracing module (tracing.py, from workloads/python-lib/) is imported and the work wrapped
in its Span as in vSwarm; with tracing off (ENABLE_TRACING unset) that is OpenTelemetry 1.3.0's
no-op span on every call, and with it on, spans go to --zipkin.
"""

import argparse
from concurrent import futures

import grpc

import tracing
import auth_pb2
import auth_pb2_grpc

FAKE_METHOD_ARN = (
    "arn:aws:execute-api:{regionId}:{accountId}:{apiId}/{stage}/{httpVerb}/"
    "[{resource}/[{child-resources}]]"
)


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("-a", "--addr", dest="addr", default="0.0.0.0", help="IP address")
    parser.add_argument("-p", "--port", dest="port", default="50051", help="serve port")
    parser.add_argument("-zipkin", "--zipkin", dest="url", default="http://0.0.0.0:9411/api/v2/spans",
                        help="Zipkin endpoint url")
    return parser.parse_args()


ARGS = parse_args()

if tracing.IsTracingEnabled():
    tracing.initTracer("auth-python", url=ARGS.url)
    tracing.grpcInstrumentClient()
    tracing.grpcInstrumentServer()


class Empty:
    """An object to hang attributes on; its repr (with address) ends up in the reply."""


def generate_policy(principal_id, effect, resource):
    auth_response = Empty()
    auth_response.principalId = principal_id
    if effect and resource:
        policy_document = Empty()
        policy_document.Version = "2012-10-17"
        policy_document.Statement = [None]
        statement = Empty()
        statement.Action = "execute-api:Invoke"
        statement.Effect = effect
        statement.Resource = resource
        policy_document.Statement[0] = statement
        auth_response.policyDocument = policy_document
    auth_response.context = {"stringKey": "stringval", "numberKey": 123, "booleanKey": True}
    return auth_response


def do_authentication(token, resource):
    with tracing.Span("Generate Policy"):
        if "allow" in token:
            effect = "Allow"
        elif "deny" in token:
            effect = "Deny"
        else:
            return "Unauthorized"
        resp = generate_policy("user", effect, resource).__dict__
        return "fn: Auth | token: {token} | resp: {resp} | runtime: python".format(token=token, resp=str(resp))


class Greeter(auth_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        msg = do_authentication(request.name, FAKE_METHOD_ARN)
        return auth_pb2.HelloReply(message=msg)


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    auth_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    address = ARGS.addr + ":" + ARGS.port
    server.add_insecure_port(address)
    print("Start Auth-python server. Addr: " + address)
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    serve()

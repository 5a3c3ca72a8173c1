// auth-go: vSwarm's auth function in Go (benchmarks/auth/go/server.go), a token authorizer:
// "allow" and "deny" build a policy document and print it with %+v, "unauthorized" answers
// "Unauthorized", any other token "Error: Invalid token"; the reply repeats the token. The
// struct and field names below are vSwarm's because %+v prints them: the reply bytes are
// vSwarm's (see tests/fixtures/conformance/auth-go.jsonl). vSwarm's optional tracing and AWS
// Lambda entry are left out: neither is on the gRPC path vSwarm-u measures.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"

	pb "simctl/workloads/proto/auth"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
)

var address = flag.String("addr", "0.0.0.0:50051", "Address:Port the grpc server is listening to")

// The method ARN vSwarm puts in every policy (a placeholder, never resolved).
const fakeMethodArn = "arn:aws:execute-api:{regionId}:{accountId}:{apiId}/{stage}/{httpVerb}/[{resource}/[{child-resources}]]"

type Statement struct {
	Action   string
	Effect   string
	Resource string
}

type policyDocument struct {
	Version   string
	Statement []Statement
}

type Context struct {
	stringKey  string
	numberKey  int
	booleanKey bool
}

type authResponse struct {
	principalId    string
	policyDocument policyDocument
	context        Context
}

func generatePolicy(principalId, effect, resource string) authResponse {
	var response authResponse
	response.principalId = principalId
	if effect != "" && resource != "" {
		response.policyDocument = policyDocument{
			Version:   "2012-10-17",
			Statement: []Statement{{Action: "execute-api:Invoke", Effect: effect, Resource: resource}},
		}
	}
	response.context = Context{stringKey: "stringval", numberKey: 123, booleanKey: true}
	return response
}

type server struct {
	pb.UnimplementedGreeterServer
}

func (s *server) SayHello(ctx context.Context, in *pb.HelloRequest) (*pb.HelloReply, error) {
	token := in.GetName()
	var msg string
	switch token {
	case "allow":
		msg = fmt.Sprintf("%+v", generatePolicy("user", "Allow", fakeMethodArn))
	case "deny":
		msg = fmt.Sprintf("%+v", generatePolicy("user", "Deny", fakeMethodArn))
	case "unauthorized":
		msg = "Unauthorized"
	default:
		msg = "Error: Invalid token"
	}
	reply := fmt.Sprintf("fn: Auth | token: %s | resp: %+v | runtime: golang", token, msg)
	return &pb.HelloReply{Message: reply}, nil
}

func main() {
	flag.Parse()
	listener, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatalf("failed to listen: %v", err)
	}
	log.Printf("Start Auth-go server: listen on : %s\n", *address)
	grpcServer := grpc.NewServer()
	pb.RegisterGreeterServer(grpcServer, &server{})
	reflection.Register(grpcServer)
	if err := grpcServer.Serve(listener); err != nil {
		log.Fatalf("failed to serve: %v", err)
	}
}

// auth-go: a token authorizer (as vSwarm's auth): "allow" and "deny" give a policy document
// for the caller, anything else is unauthorized. Speaks vSwarm's auth.Greeter/SayHello.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net"

	pb "simctl/workloads/proto/auth"

	"google.golang.org/grpc"
)

type statement struct {
	Action   string `json:"Action"`
	Effect   string `json:"Effect"`
	Resource string `json:"Resource"`
}

type policy struct {
	PrincipalID    string `json:"principalId"`
	PolicyDocument struct {
		Version   string      `json:"Version"`
		Statement []statement `json:"Statement"`
	} `json:"policyDocument"`
}

func generatePolicy(effect string) string {
	var p policy
	p.PrincipalID = "user"
	p.PolicyDocument.Version = "2012-10-17"
	p.PolicyDocument.Statement = []statement{{Action: "execute-api:Invoke", Effect: effect, Resource: "arn:simctl:function"}}
	out, err := json.Marshal(p)
	if err != nil {
		log.Fatal(err)
	}
	return string(out)
}

type server struct {
	pb.UnimplementedGreeterServer
}

func (s *server) SayHello(ctx context.Context, in *pb.HelloRequest) (*pb.HelloReply, error) {
	var message string
	switch in.GetName() {
	case "allow":
		message = generatePolicy("Allow")
	case "deny":
		message = generatePolicy("Deny")
	default:
		message = "Unauthorized"
	}
	return &pb.HelloReply{Message: "fn: Auth | " + message}, nil
}

func main() {
	addr := flag.String("addr", "0.0.0.0:50051", "address to listen on")
	flag.Parse()
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("auth-go: cannot listen on %s: %v", *addr, err)
	}
	grpcServer := grpc.NewServer()
	pb.RegisterGreeterServer(grpcServer, &server{})
	log.Printf("auth-go: serving on %s", *addr)
	if err := grpcServer.Serve(listener); err != nil {
		log.Fatalf("auth-go: %v", err)
	}
}

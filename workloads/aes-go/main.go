// aes-go: vSwarm's aes function in Go (benchmarks/aes/go/server.go): AES in CTR mode with the
// key hex-decoded from -key and a zero IV, over the request's plaintext_message; an empty
// message or "world" is replaced by -default-plaintext. The reply text, the flags and their
// defaults are vSwarm's, so the same request gives the same reply bytes (see
// tests/fixtures/conformance/aes-go.jsonl). vSwarm's optional tracing and AWS Lambda entry are
// left out: neither is on the gRPC path vSwarm-u measures.
package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net"

	pb "simctl/workloads/proto/aes"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
)

var (
	address          = flag.String("addr", "0.0.0.0:50051", "Address:Port the grpc server is listening to")
	keyHex           = flag.String("key", "6368616e676520746869732070617373", "The key which is used for encryption")
	defaultPlaintext = flag.String("default-plaintext", "defaultplaintext", "Default plaintext when the function is called with the plaintext_message world")
)

// encryptCTR decodes the key on every call and uses an all-zero IV, as vSwarm does, so that
// each invocation executes the same work as vSwarm's.
func encryptCTR(plaintext []byte) []byte {
	key, _ := hex.DecodeString(*keyHex)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	iv := make([]byte, aes.BlockSize)
	ciphertext := make([]byte, len(plaintext))
	cipher.NewCTR(block, iv).XORKeyStream(ciphertext, plaintext)
	return ciphertext
}

type server struct {
	pb.UnimplementedAesServer
}

func (s *server) ShowEncryption(ctx context.Context, in *pb.PlainTextMessage) (*pb.ReturnEncryptionInfo, error) {
	var plaintext []byte
	if in.GetPlaintextMessage() == "" || in.GetPlaintextMessage() == "world" {
		plaintext = []byte(*defaultPlaintext)
	} else {
		plaintext = []byte(in.GetPlaintextMessage())
	}
	ciphertext := encryptCTR(plaintext)
	reply := fmt.Sprintf("fn: AES | plaintext: %s | ciphertext: %x | runtime: golang", plaintext, ciphertext)
	return &pb.ReturnEncryptionInfo{EncryptionInfo: reply}, nil
}

func main() {
	flag.Parse()
	listener, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatalf("failed to listen: %v", err)
	}
	log.Printf("Start AES-go server. Addr: %s\n", *address)
	grpcServer := grpc.NewServer()
	pb.RegisterAesServer(grpcServer, &server{})
	reflection.Register(grpcServer)
	if err := grpcServer.Serve(listener); err != nil {
		log.Fatalf("failed to serve: %v", err)
	}
}

// aes-go: encrypts the request text with AES-128 in CTR mode and returns the ciphertext,
// speaking vSwarm's aes.Aes/ShowEncryption interface.
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
)

// The key and IV are fixed (as in vSwarm's aes) so that every invocation does the same work
// and the host can check the answer.
var key = []byte("6368616e67652074")
var iv = []byte("simctl-aes-iv-16")

const defaultPlaintext = "defaultplaintext"

type server struct {
	pb.UnimplementedAesServer
}

func encrypt(plaintext string) string {
	block, err := aes.NewCipher(key)
	if err != nil {
		log.Fatal(err)
	}
	out := make([]byte, len(plaintext))
	cipher.NewCTR(block, iv).XORKeyStream(out, []byte(plaintext))
	return hex.EncodeToString(out)
}

func (s *server) ShowEncryption(ctx context.Context, in *pb.PlainTextMessage) (*pb.ReturnEncryptionInfo, error) {
	plaintext := in.GetPlaintextMessage()
	if plaintext == "" || plaintext == "world" {
		plaintext = defaultPlaintext
	}
	return &pb.ReturnEncryptionInfo{EncryptionInfo: fmt.Sprintf("fn: AES | plaintext: %s | ciphertext: %s", plaintext, encrypt(plaintext))}, nil
}

func main() {
	addr := flag.String("addr", "0.0.0.0:50051", "address to listen on")
	flag.Parse()
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("aes-go: cannot listen on %s: %v", *addr, err)
	}
	grpcServer := grpc.NewServer()
	pb.RegisterAesServer(grpcServer, &server{})
	log.Printf("aes-go: serving on %s", *addr)
	if err := grpcServer.Serve(listener); err != nil {
		log.Fatalf("aes-go: %v", err)
	}
}

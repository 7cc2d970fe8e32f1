package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/pipelines/intent/intenttest"
	"github.com/infergo/infergo/server/humanfirst/pb/integrationpb"
	"github.com/infergo/infergo/server/humanfirst/pb/nlupb"
)

// pki is a throwaway CA with a server pair (for infergo) and a client pair (the platform).
type pki struct {
	caPEM, serverCert, serverKey []byte
	client                       tls.Certificate
	ca                           *x509.Certificate
}

func newTestPKI(t *testing.T) *pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, eku x509.ExtKeyUsage) ([]byte, []byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), key
	}
	p := &pki{ca: ca, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}
	p.serverCert, p.serverKey, _ = issue(2, "infergo", x509.ExtKeyUsageServerAuth)
	cc, ck, _ := issue(3, "humanfirst", x509.ExtKeyUsageClientAuth)
	p.client, err = tls.X509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pki) credentialsFile(t *testing.T) string {
	b, _ := json.Marshal(map[string]any{
		"local_keypair":      map[string]string{"certificate": string(p.serverCert), "private_key": string(p.serverKey)},
		"remote_certificate": string(p.caPEM),
	})
	path := filepath.Join(t.TempDir(), "mtls-credentials.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeHumanFirst starts the binary with HumanFirst credentials and drives the gRPC
// services over mutual TLS with the built-in model: capabilities, embeddings equal to the
// HTTP API's, and a training + classification round trip.
func TestServeHumanFirst(t *testing.T) {
	p := newTestPKI(t)
	grpcPort := freePort(t)
	srv := startServe(t, []string{"TASK=", "MODEL_ID="},
		"--humanfirst-credentials", p.credentialsFile(t), "--grpc-addr", fmt.Sprintf("127.0.0.1:%d", grpcPort), "--data-dir", t.TempDir())

	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	creds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{p.client}, MinVersion: tls.VersionTLS12})
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", grpcPort), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caps, err := integrationpb.NewDiscoveryClient(conn).GetCapabilities(ctx, &integrationpb.GetCapabilitiesRequest{})
	if err != nil || !caps.GetSupportsModels() {
		t.Fatalf("GetCapabilities: %v, %v", caps, err)
	}
	models := integrationpb.NewModelsClient(conn)
	er, err := models.Embed(ctx, &integrationpb.EmbedRequest{Examples: []string{"A man is eating food."}})
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	if len(er.GetShape()) != 2 || er.GetShape()[1] != 32 {
		t.Fatalf("embed shape %v", er.GetShape())
	}
	testutil.AssertClose(t, "gRPC Embed", er.GetData(), g.MeanNormalized[0], 1e-4)

	resp, err := models.TrainModel(ctx, &integrationpb.TrainModelRequest{Data: intenttest.SpecWorkspace})
	if err != nil {
		t.Fatalf("TrainModel: %v", err)
	}
	trained := resp.GetModel()
	cr, err := models.Classify(ctx, &integrationpb.ClassifyRequest{ModelId: trained.GetId(),
		Examples: []*nlupb.Example{{Contents: "hello there"}, {Contents: "bye"}}})
	if err != nil || len(cr.GetPredictions()) != 2 || len(cr.GetPredictions()[0].GetMatches()) == 0 {
		t.Fatalf("Classify: %v, %v", cr, err)
	}
	if _, err := models.DeleteModel(ctx, &integrationpb.DeleteModelRequest{ModelId: trained.GetId()}); err != nil {
		t.Fatal(err)
	}
	srv.stop(t)
}

// TestHumanFirstEvaluate runs `infergo humanfirst evaluate` on the spec's example workspace.
func TestHumanFirstEvaluate(t *testing.T) {
	dir := t.TempDir()
	ws := filepath.Join(dir, "workspace.json")
	if err := os.WriteFile(ws, intenttest.SpecWorkspace, 0o644); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "confusion.png")
	cmd := exec.Command(binary, "humanfirst", "evaluate", ws, "--folds", "2", "--png", png)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir(), "MODEL_ID=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("evaluate: %v\n%s", err, out)
	}
	for _, want := range []string{"accuracy", "macro"} {
		if !strings.Contains(strings.ToLower(string(out)), want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(png)
	if err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Errorf("confusion matrix PNG: %v (%d bytes)", err, len(b))
	}
}

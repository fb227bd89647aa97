package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/golang-jwt/jwt/v5"
)

// The files of keys, in --dir.
const (
	secretFile     = "hs256.key"
	privateKeyFile = "rs256.pem"
	publicKeyFile  = "rs256.pub.pem"
)

const (
	secretBytes = 32
	rsaBits     = 2048
)

func keysCommand(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	dir := fs.String("dir", "", "folder of the key files (made if missing)")
	force := fs.Bool("force", false, "replace the key files that exist")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("keys: --dir is required")
	}
	return writeKeys(*dir, *force, out)
}

// writeKeys writes the key files missing from dir (all of them with force), and says on out
// which it wrote and which it kept. A public key alone, without its private key, is refused:
// a new pair would not match the one the edge may already use.
func writeKeys(dir string, force bool, out io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	secretPath := filepath.Join(dir, secretFile)
	if force || !exists(secretPath) {
		secret := make([]byte, secretBytes)
		rand.Read(secret)
		if err := writeFileAtomic(secretPath, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintln(out, "wrote", secretPath)
	} else {
		fmt.Fprintln(out, "kept", secretPath)
	}

	privatePath, publicPath := filepath.Join(dir, privateKeyFile), filepath.Join(dir, publicKeyFile)
	var key *rsa.PrivateKey
	switch {
	case force || !exists(privatePath) && !exists(publicPath):
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, rsaBits); err != nil {
			return err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(privatePath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return err
		}
		fmt.Fprintln(out, "wrote", privatePath)
	case exists(privatePath):
		var err error
		if key, err = readPrivateKey(privatePath); err != nil {
			return err
		}
		fmt.Fprintln(out, "kept", privatePath)
	default:
		return fmt.Errorf("%s exists without %s; --force makes a new pair", publicPath, privatePath)
	}

	if !force && exists(publicPath) {
		pemBytes, err := os.ReadFile(publicPath)
		if err != nil {
			return err
		}
		if pub, err := jwt.ParseRSAPublicKeyFromPEM(pemBytes); err != nil || !pub.Equal(&key.PublicKey) {
			return fmt.Errorf("%s is not the public key of %s; --force makes a new pair", publicPath, privatePath)
		}
		fmt.Fprintln(out, "kept", publicPath)
		return nil
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(publicPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(out, "wrote", publicPath)
	return nil
}

// readPrivateKey reads an RSA private key in PEM, PKCS#8 or PKCS#1.
func readPrivateKey(path string) (*rsa.PrivateKey, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%s holds no RSA private key in PEM: %v", path, err)
	}
	return key, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// writeFileAtomic writes path through a temporary file and a rename, so that a reader (or a
// crash) never sees half a key.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".edgetoken-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename, there is nothing left to remove
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	return err
}

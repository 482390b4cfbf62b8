// Command etcd is the etcd server at the version k8s.io/kubernetes was tested
// with; `go install` of etcd's own server module fails on its replace directives.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

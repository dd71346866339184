// Command etcd is etcd's server, built from go.etcd.io/etcd/server/v3 at the pinned version.
//
// etcd's own main package lives in its root module, whose go.mod points at sibling folders with
// replace lines, so it cannot be built from the module proxy; this is the same one-line main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

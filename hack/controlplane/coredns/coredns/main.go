// Command coredns is CoreDNS with only the plugins the harness's Corefile uses. CoreDNS's own
// main links every plugin of its plugin.cfg, whose cloud SDKs (route53, azure, clouddns, ...) the
// Go module proxy here does not all serve; a build with fewer plugins is CoreDNS's documented way
// to trim it (plugins register themselves when imported).
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}

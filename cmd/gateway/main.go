// Command gateway is the gateway service of the pipeline (see docs/architecture.md).
// Its component is not built yet: it accepts the common configuration and exits.
package main

import "github.com/seqchat/seqchat/pipeline/service"

func main() { service.Placeholder("gateway", service.DefaultAdminAddr("gateway")) }

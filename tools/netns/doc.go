// Package netns cuts one service off the network while it keeps running,
// for fault tests: the service runs in a network namespace joined by a
// veth pair to a Linux bridge that holds the brokers' address (made by
// scripts/stack.sh with SEQCHAT_KAFKA_BRIDGE), and the harness takes the
// pair's link down and up again. It drives iproute2's ip and needs root.
package netns

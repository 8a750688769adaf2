// Package control reads and writes the control topic (im.control), whose
// one record lists the live generations of the partitioned topics, and
// follows it for the services: the generations they serve and whether
// their view is recent (docs/architecture.md, Generations and the control
// topic). The record's rules are package generation's.
package control

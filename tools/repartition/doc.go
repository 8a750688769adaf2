// Package repartition performs a live repartition of a running pipeline,
// step by step as internal/generation decides them: it creates the new
// generation's topics, publishes the control record, writes the fences and
// watches the hand-over (imctl repartition; docs/architecture.md,
// Repartitioning).
package repartition

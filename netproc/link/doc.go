// Package link is netproc's link layer: the [Device] boundary through which
// IPv4 packets enter and leave saturn's user-level stack, and its
// implementations:
//
//   - [TUN]: a Linux TUN device (IFF_TUN|IFF_NO_PI), with the virtio-net
//     header and the checksum and TSO offloads where the kernel accepts them;
//   - [NetnsTUN]: a TUN device moved into a named network namespace whose
//     kernel side is addressed, so that programs run there with
//     `ip netns exec` reach saturn's address;
//   - [Impaired]: a wrapper that drops, duplicates, reorders and delays
//     packets in both directions, deterministically for a seed;
//   - [Capture]: a tap that writes what passes to a pcap file;
//   - [Channel]: a device made of channels, for tests of upper layers.
//
// Devices move packets in batches and leave headroom in front of each packet
// for link headers (the virtio-net header), in the manner of wireguard-go's
// tun.Device, so that a packet goes from the stack to the kernel without a
// copy.
package link

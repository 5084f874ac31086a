// umbra.p4 — Umbra's data plane (P4_16, v1model).
//
// Steers the traffic of protected services through the *active* device of a
// primary/shadow pair, mirrors a statistically representative sample of it to
// the shadow's monitor leg, and counts everything the failover orchestrator
// needs to verify a switchover.
//
// Port roles (assigned at run time through `port_classify`, never hard-coded):
//   client port, server port            -> set_service(service, direction)
//   device legs (primary/shadow, c & s) -> forward_to_port(client or server)
//   shadow monitor leg                  -> only ever an egress (clone target)
//   CPU port (CPU_PORT)                 -> packet-out / packet-in
//
// Failover is ONE P4Runtime MODIFY of the `service_selector` entry of a
// service: every packet is steered by either the old or the new device, never
// a mix, because the device is looked up once per packet.
//
// Every object carries an @id so that the P4Info is deterministic; the ids are
// the p4c convention (type prefix in the top byte, annotation in the low 24
// bits). The software switch (`p4/pipeline`) executes exactly this program.

#include <core.p4>
#include <v1model.p4>

// Must match bmv2's `--cpu-port` and `umbra switch --cpu-port`.
const bit<9> CPU_PORT = 255;

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<8>  IP_PROTO_TCP   = 6;
const bit<8>  IP_PROTO_UDP   = 17;

// v1model instance_type of an ingress-to-egress clone (bmv2).
const bit<32> INSTANCE_TYPE_I2E_CLONE = 1;

// ---------------------------------------------------------------- headers --

// Prepended to every packet sent to the controller.
@id(0x000501)
@controller_header("packet_in")
header packet_in_t {
    bit<9> ingress_port;
    bit<7> _pad;
}

// Prepended by the controller to every packet it injects; the packet leaves
// through `egress_port` without touching the steering tables.
@id(0x000502)
@controller_header("packet_out")
header packet_out_t {
    bit<9> egress_port;
    bit<7> _pad;
}

header ethernet_t {
    bit<48> dst_addr;
    bit<48> src_addr;
    bit<16> ether_type;
}

header ipv4_t {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  diffserv;
    bit<16> total_len;
    bit<16> identification;
    bit<3>  flags;
    bit<13> frag_offset;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdr_checksum;
    bit<32> src_addr;
    bit<32> dst_addr;
}

header tcp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<32> seq_no;
    bit<32> ack_no;
    bit<4>  data_offset;
    bit<4>  res;
    bit<8>  flags;
    bit<16> window;
    bit<16> checksum;
    bit<16> urgent_ptr;
}

header udp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> length;
    bit<16> checksum;
}

struct headers_t {
    packet_out_t packet_out;
    packet_in_t  packet_in;
    ethernet_t   ethernet;
    ipv4_t       ipv4;
    tcp_t        tcp;
    udp_t        udp;
}

struct metadata_t {
    bit<16> service_id;   // protected service of the packet (0: none)
    bit<8>  direction;    // 0: client -> server, 1: server -> client
    bit<8>  device;       // active device of the service (0: none)
    bit<16> l4_src_port;  // 0 when there is no TCP/UDP header
    bit<16> l4_dst_port;
    // Endpoints ordered so that both directions of a flow hash alike.
    bit<32> flow_lo_addr;
    bit<32> flow_hi_addr;
    bit<16> flow_lo_port;
    bit<16> flow_hi_port;
    bit<32> sample_rnd;
    bit<32> flow_hash;
}

// ----------------------------------------------------------------- parser --

parser UmbraParser(packet_in pkt,
                   out headers_t hdr,
                   inout metadata_t meta,
                   inout standard_metadata_t standard_metadata) {
    state start {
        transition select(standard_metadata.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_ethernet;
        }
    }

    state parse_packet_out {
        pkt.extract(hdr.packet_out);
        transition parse_ethernet;
    }

    state parse_ethernet {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;   // non-IP traffic is steered all the same
        }
    }

    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        // Transport headers only on unfragmented, option-less IPv4 (or the
        // first fragment of it); anything else is steered without them.
        transition select(hdr.ipv4.ihl, hdr.ipv4.frag_offset, hdr.ipv4.protocol) {
            (4w5, 13w0, IP_PROTO_TCP): parse_tcp;
            (4w5, 13w0, IP_PROTO_UDP): parse_udp;
            default: accept;
        }
    }

    state parse_tcp {
        pkt.extract(hdr.tcp);
        meta.l4_src_port = hdr.tcp.src_port;
        meta.l4_dst_port = hdr.tcp.dst_port;
        transition accept;
    }

    state parse_udp {
        pkt.extract(hdr.udp);
        meta.l4_src_port = hdr.udp.src_port;
        meta.l4_dst_port = hdr.udp.dst_port;
        transition accept;
    }
}

control UmbraVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

// ---------------------------------------------------------------- ingress --

control UmbraIngress(inout headers_t hdr,
                     inout metadata_t meta,
                     inout standard_metadata_t standard_metadata) {

    @id(0x000301) counter(512, CounterType.packets_and_bytes) port_rx;
    @id(0x000401) direct_counter(CounterType.packets_and_bytes) classify_hits;
    @id(0x000402) direct_counter(CounterType.packets_and_bytes) steer_hits;

    @id(0x000201)
    action set_service(bit<16> service_id, bit<8> direction) {
        meta.service_id = service_id;
        meta.direction = direction;
    }

    @id(0x000202)
    action forward_to_port(bit<9> port) {
        standard_metadata.egress_spec = port;
    }

    @id(0x000203)
    action punt_to_cpu() {
        standard_metadata.egress_spec = CPU_PORT;
    }

    @id(0x000204)
    action drop() {
        mark_to_drop(standard_metadata);
    }

    // The one action a failover rewrites.
    @id(0x000205)
    action set_active_device(bit<8> device) {
        meta.device = device;
    }

    @id(0x000206)
    action steer_to_port(bit<9> port) {
        standard_metadata.egress_spec = port;
    }

    // sFlow-style: each packet independently with probability 1/one_in_n
    // (0 disables sampling).
    @id(0x000207)
    action sample_per_packet(bit<32> one_in_n, bit<32> session) {
        if (one_in_n != 0) {
            random(meta.sample_rnd, 32w0, one_in_n - 1);
            if (meta.sample_rnd == 0) {
                clone(CloneType.I2E, session);
            }
        }
    }

    // Whole flows: a flow is mirrored iff the hash of its direction-free
    // 5-tuple is below `threshold` (threshold / 2^32 is the sampled share).
    @id(0x000208)
    action sample_per_flow(bit<32> threshold, bit<32> session) {
        hash(meta.flow_hash, HashAlgorithm.crc32, 32w0,
             { meta.flow_lo_addr, meta.flow_hi_addr, hdr.ipv4.protocol,
               meta.flow_lo_port, meta.flow_hi_port },
             32w0xffffffff);
        if (meta.flow_hash < threshold) {
            clone(CloneType.I2E, session);
        }
    }

    @id(0x000209)
    action no_sampling() { }

    // Ingress port -> role of the port.
    @id(0x000101)
    table port_classify {
        key = {
            standard_metadata.ingress_port : exact @name("ingress_port");
        }
        actions = {
            set_service;
            forward_to_port;
            punt_to_cpu;
            drop;
        }
        default_action = drop();
        counters = classify_hits;
        size = 64;
    }

    // Service -> active device. One entry per protected service.
    @id(0x000102)
    table service_selector {
        key = {
            meta.service_id : exact @name("service_id");
        }
        actions = {
            set_active_device;
            drop;
        }
        default_action = drop();
        size = 256;
    }

    // (active device, direction) -> egress port: the device's leg.
    @id(0x000103)
    table device_portmap {
        key = {
            meta.device    : exact @name("device");
            meta.direction : exact @name("direction");
        }
        actions = {
            steer_to_port;
            drop;
        }
        default_action = drop();
        counters = steer_hits;
        size = 512;
    }

    // Ingress port -> how its traffic is sampled towards the shadow.
    @id(0x000104)
    table mirror_sampling {
        key = {
            standard_metadata.ingress_port : exact @name("ingress_port");
        }
        actions = {
            sample_per_packet;
            sample_per_flow;
            no_sampling;
        }
        default_action = no_sampling();
        size = 64;
    }

    apply {
        port_rx.count((bit<32>) standard_metadata.ingress_port);

        if (hdr.packet_out.isValid()) {
            standard_metadata.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
        } else {
            if (hdr.ipv4.isValid()) {
                if (hdr.ipv4.src_addr < hdr.ipv4.dst_addr ||
                    (hdr.ipv4.src_addr == hdr.ipv4.dst_addr &&
                     meta.l4_src_port <= meta.l4_dst_port)) {
                    meta.flow_lo_addr = hdr.ipv4.src_addr;
                    meta.flow_lo_port = meta.l4_src_port;
                    meta.flow_hi_addr = hdr.ipv4.dst_addr;
                    meta.flow_hi_port = meta.l4_dst_port;
                } else {
                    meta.flow_lo_addr = hdr.ipv4.dst_addr;
                    meta.flow_lo_port = meta.l4_dst_port;
                    meta.flow_hi_addr = hdr.ipv4.src_addr;
                    meta.flow_hi_port = meta.l4_src_port;
                }
            }

            switch (port_classify.apply().action_run) {
                set_service: {
                    // Steer only through a device the selector named: a
                    // miss (or drop) must not fall through to device 0.
                    switch (service_selector.apply().action_run) {
                        set_active_device: {
                            device_portmap.apply();
                        }
                    }
                    mirror_sampling.apply();
                }
            }
        }
    }
}

// ----------------------------------------------------------------- egress --

control UmbraEgress(inout headers_t hdr,
                    inout metadata_t meta,
                    inout standard_metadata_t standard_metadata) {

    @id(0x000302) counter(512, CounterType.packets_and_bytes) port_tx;

    @id(0x00020a)
    action truncate_mirror(bit<32> length) {
        truncate(length);
    }

    @id(0x00020b)
    action no_truncate() { }

    // Mirror leg -> length mirrored samples are cut to (bmv2 refuses the PRE's
    // packet_length_bytes, so the program does it).
    @id(0x000105)
    table mirror_truncate {
        key = {
            standard_metadata.egress_port : exact @name("egress_port");
        }
        actions = {
            truncate_mirror;
            no_truncate;
        }
        default_action = no_truncate();
        size = 64;
    }

    apply {
        if (standard_metadata.instance_type == INSTANCE_TYPE_I2E_CLONE) {
            mirror_truncate.apply();
        }
        if (standard_metadata.egress_port == CPU_PORT) {
            hdr.packet_in.setValid();
            hdr.packet_in.ingress_port = standard_metadata.ingress_port;
            hdr.packet_in._pad = 0;
        }
        port_tx.count((bit<32>) standard_metadata.egress_port);
    }
}

control UmbraComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    // No header field is rewritten, so no checksum changes.
    apply { }
}

control UmbraDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.packet_in);
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.tcp);
        pkt.emit(hdr.udp);
    }
}

V1Switch(UmbraParser(),
         UmbraVerifyChecksum(),
         UmbraIngress(),
         UmbraEgress(),
         UmbraComputeChecksum(),
         UmbraDeparser()) main;

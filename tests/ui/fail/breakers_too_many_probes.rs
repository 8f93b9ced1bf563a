// The breaker counts half-open probes in 15 bits: 32,768 would be silently cut to 32,767.
stormguard::breakers! {
    payments { half_open_probes: 32768 }
}

fn main() {}

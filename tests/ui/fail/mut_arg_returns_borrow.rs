use stormguard::retry;

#[derive(Debug)]
struct ReadError;

// A named lifetime shared by the `&'a mut` argument and the result: the same loop problem.
#[retry(attempts = 3, base = "1ms")]
fn fill<'a>(buf: &'a mut Vec<u8>) -> Result<&'a [u8], ReadError> {
    buf.push(1);
    Ok(&buf[..])
}

fn main() {
    let mut buf = Vec::new();
    let _ = fill(&mut buf);
}

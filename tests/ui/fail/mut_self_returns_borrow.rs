use stormguard::retry;

#[derive(Debug)]
struct ReadError;

struct Reader {
    line: String,
}

impl Reader {
    // Each attempt borrows `self` again; the `&str` would keep one attempt's borrow.
    #[retry(attempts = 3, base = "1ms")]
    async fn read_line(&mut self) -> Result<&str, ReadError> {
        self.line.push('x');
        Ok(&self.line)
    }
}

fn main() {
    let mut reader = Reader { line: String::new() };
    let _ = reader.read_line();
}

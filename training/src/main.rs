fn main() {
    println!("{}", slimmatte_training::hello());
}

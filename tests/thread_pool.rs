//! The process-wide ONNX Runtime pool: networks opened with `threads = 0` share it and start no
//! threads of their own; a network with `threads = N` gets its own pool. One test in its own
//! process, since it counts the process's threads.

use slimmatte::runtime::{self, SHARED_POOL};
use slimmatte::segment::PersonSegmenter;

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn shared_pool_networks_start_no_threads_and_own_pools_do() {
    let model = slimmatte::paths::default_segmentation_model();
    let mut nets = vec![PersonSegmenter::load(&model, SHARED_POOL).unwrap()];
    let pool = runtime::pool_threads();
    assert!(pool >= 1);
    let before = thread_count();
    for _ in 0..4 {
        nets.push(PersonSegmenter::load(&model, SHARED_POOL).unwrap());
    }
    assert_eq!(
        thread_count(),
        before,
        "networks on the shared pool started threads"
    );
    // A network with a pool of its own: 3 intra-op threads, the caller being one of them.
    nets.push(PersonSegmenter::load(&model, 3).unwrap());
    assert!(
        thread_count() >= before + 2,
        "a private pool of 3 added {} threads",
        thread_count() - before
    );
    // Every network still runs (on the shared pool or its own).
    let frame = vec![128u8; 64 * 48 * 4];
    let view = ndarray::ArrayView3::from_shape((48, 64, 4), &frame[..]).unwrap();
    let (w, h) = nets[0].resolution();
    for net in &mut nets {
        let mask = net.run(&view).unwrap();
        assert_eq!(mask.len(), w * h);
        assert!(mask.iter().all(|p| (0.0..=1.0).contains(p)));
    }
}

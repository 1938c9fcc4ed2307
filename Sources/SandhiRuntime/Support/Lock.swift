import SandhiIO

/// The I/O layer's adaptive-mutex lock, under the name the runtime has always used for it.
public typealias Lock = SandhiIO.Lock

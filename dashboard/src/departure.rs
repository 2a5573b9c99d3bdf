//! Whether a request's client is still there. actix-web goes on with a handler whose client has
//! closed the connection (it finds out only when it writes the answer), so the handlers that
//! run queries watch the connection themselves: each connection keeps a duplicate of its
//! socket's descriptor, and a request waits on it for the client's end of the stream.
//!
//! A client that half-closes its side after sending a request counts as gone; HTTP clients
//! do not do that, and proxies close the upstream connection when their client leaves.

use std::any::Any;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use actix_web::dev::Extensions;
use actix_web::HttpRequest;
use tokio::io::Interest;

/// A duplicate of a connection's socket, owned by the connection's data: closed with it.
struct Peer(OwnedFd);

/// `HttpServer::on_connect`: remembers the connection's socket.
pub(crate) fn remember(connection: &dyn Any, data: &mut Extensions) {
    let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    if let Ok(fd) = stream.as_fd().try_clone_to_owned() {
        data.insert(Peer(fd));
    }
}

/// Resolves once the client has closed its end of the connection; never if that cannot be
/// watched.
pub(crate) async fn client_left(req: &HttpRequest) {
    let watch = req.conn_data::<Peer>().and_then(|peer| watcher(peer).ok());
    let Some(watch) = watch else {
        return std::future::pending().await;
    };
    loop {
        match watch.ready(Interest::READABLE).await {
            Ok(ready) if ready.is_read_closed() => return,
            // A pipelined request: not ours to read. Wait for the next change.
            Ok(_) => {
                let _ = watch.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
            }
            Err(_) => return std::future::pending().await,
        }
    }
}

/// The socket registered for this request (a descriptor of its own, closed after it).
fn watcher(peer: &Peer) -> io::Result<tokio::net::TcpStream> {
    let stream = std::net::TcpStream::from(peer.0.try_clone()?);
    stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(stream)
}

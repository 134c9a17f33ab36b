// DistSgd.Actors: the cluster orchestration (centralized MasterActor/WorkerActor, decentralized
// PeerActor, protocol and serialization). Filled by the distributed-mode issues.
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("DistSgd.Actors.Tests")]

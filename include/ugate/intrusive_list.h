#pragma once
// A doubly linked list threaded through the elements themselves (members `T* prev` and `T* next`),
// for owners that hold many objects and must unlink any of them in O(1) without allocating (a
// worker's sessions, the admin endpoint's connections). The owner keeps the head pointer.

namespace ugate {

/** listPushFront links n (unlinked) at the front of the list starting at head. */
template <class T>
void listPushFront(T*& head, T* n) {
  n->prev = nullptr;
  n->next = head;
  if (head) head->prev = n;
  head = n;
}

/** listUnlink takes n out of the list starting at head, and clears its links. */
template <class T>
void listUnlink(T*& head, T* n) {
  if (n->prev) n->prev->next = n->next;
  else head = n->next;
  if (n->next) n->next->prev = n->prev;
  n->prev = n->next = nullptr;
}

}  // namespace ugate

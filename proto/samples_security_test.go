package proto

// Samples of the security messages (SaslHandshake to ACLs).

func securityMsgTypes() []msgType {
	entries := []ACLEntry{
		{Principal: "User:alice", Resource: 1, Pattern: 1, Name: "orders", Operation: 2, Permission: 1},
		{Principal: "*", Resource: 2, Pattern: 2, Name: "billing-", Operation: 1, Permission: 2},
	}
	return []msgType{
		{"SaslHandshakeRequest", func() Message { return new(SaslHandshakeRequest) }, []Message{
			&SaslHandshakeRequest{Mechanism: MechanismScramSHA256},
		}},
		{"SaslHandshakeResponse", func() Message { return new(SaslHandshakeResponse) }, []Message{
			&SaslHandshakeResponse{Mechanisms: []string{MechanismScramSHA256, MechanismScramSHA512}},
			&SaslHandshakeResponse{Error: SaslAuthenticationFailed},
		}},
		{"SaslAuthenticateRequest", func() Message { return new(SaslAuthenticateRequest) }, []Message{
			&SaslAuthenticateRequest{Auth: []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")},
		}},
		{"SaslAuthenticateResponse", func() Message { return new(SaslAuthenticateResponse) }, []Message{
			&SaslAuthenticateResponse{Auth: []byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")},
			&SaslAuthenticateResponse{Error: SaslAuthenticationFailed, Message: "authentication failed"},
		}},
		{"AlterUserRequest", func() Message { return new(AlterUserRequest) }, []Message{
			&AlterUserRequest{Name: "alice", Mechanism: MechanismScramSHA256, Salt: []byte("salt-16-bytes..."),
				Iterations: 4096, StoredKey: []byte{1, 2, 3}, ServerKey: []byte{4, 5, 6}},
			&AlterUserRequest{Delete: true, Name: "bob"},
		}},
		{"AlterUserResponse", func() Message { return new(AlterUserResponse) }, []Message{
			&AlterUserResponse{}, &AlterUserResponse{Error: InvalidRequest, Message: "iterations 100 < 4096"},
		}},
		{"ListUsersRequest", func() Message { return new(ListUsersRequest) }, []Message{&ListUsersRequest{}}},
		{"ListUsersResponse", func() Message { return new(ListUsersResponse) }, []Message{
			&ListUsersResponse{Users: []UserInfo{
				{Name: "alice", Mechanisms: []UserMechanism{{MechanismScramSHA256, 4096}, {MechanismScramSHA512, 8192}}},
				{Name: "bob"},
			}},
			&ListUsersResponse{},
		}},
		{"ACLsRequest", func() Message { return new(ACLsRequest) }, []Message{
			&ACLsRequest{Op: ACLCreate, Entries: entries}, &ACLsRequest{Op: ACLList},
		}},
		{"ACLsResponse", func() Message { return new(ACLsResponse) }, []Message{
			&ACLsResponse{Entries: entries}, &ACLsResponse{Error: InvalidRequest, Message: "entry 0: acl: invalid entry: empty principal"},
		}},
	}
}
